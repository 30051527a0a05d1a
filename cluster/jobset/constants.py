"""JobSet's API constants (``api/jobset/v1alpha2/jobset_types.go``, ``pkg/constants``): label and
annotation keys, condition types, reasons and messages, as clients and tests match them."""

from __future__ import annotations

from kubetrain.informers.resource import ResourceRef

GROUP = "jobset.x-k8s.io"
VERSION = "v1alpha2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "JobSet"
JOBSETS = ResourceRef(GROUP, VERSION, "jobsets", True, KIND)
JOBS = ResourceRef("batch", "v1", "jobs", True, "Job")
CONTROLLER_NAME = "jobset.sigs.k8s.io/jobset-controller"
"""``spec.managedBy`` values other than this one are left to another controller."""

# -- labels and annotations on child Jobs and their pod templates -------------------------------
JOBSET_NAME_KEY = "jobset.sigs.k8s.io/jobset-name"
JOBSET_UID_KEY = "jobset.sigs.k8s.io/jobset-uid"
REPLICATED_JOB_REPLICAS_KEY = "jobset.sigs.k8s.io/replicatedjob-replicas"
GLOBAL_REPLICAS_KEY = "jobset.sigs.k8s.io/global-replicas"
REPLICATED_JOB_NAME_KEY = "jobset.sigs.k8s.io/replicatedjob-name"
JOB_INDEX_KEY = "jobset.sigs.k8s.io/job-index"
JOB_GLOBAL_INDEX_KEY = "jobset.sigs.k8s.io/job-global-index"
JOB_KEY = "jobset.sigs.k8s.io/job-key"
RESTARTS_KEY = "jobset.sigs.k8s.io/restart-attempt"
GROUP_NAME_KEY = "jobset.sigs.k8s.io/group-name"
GROUP_REPLICAS_KEY = "jobset.sigs.k8s.io/group-replicas"
JOB_GROUP_INDEX_KEY = "jobset.sigs.k8s.io/job-group-index"
COORDINATOR_KEY = "jobset.sigs.k8s.io/coordinator"
EXCLUSIVE_KEY = "alpha.jobset.sigs.k8s.io/exclusive-topology"
NODE_SELECTOR_STRATEGY_KEY = "alpha.jobset.sigs.k8s.io/node-selector"
NAMESPACED_JOB_KEY = "alpha.jobset.sigs.k8s.io/namespaced-job"
NO_SCHEDULE_TAINT_KEY = "alpha.jobset.sigs.k8s.io/no-schedule"

# -- conditions ----------------------------------------------------------------------------------
COMPLETED = "Completed"
FAILED = "Failed"
SUSPENDED = "Suspended"
RESTARTING = "RestartingJobSet"
STARTUP_IN_PROGRESS = "StartupPolicyInProgress"
STARTUP_COMPLETED = "StartupPolicyCompleted"

REACHED_MAX_RESTARTS_REASON = "ReachedMaxRestarts"
REACHED_MAX_RESTARTS_MESSAGE = "jobset failed due to reaching max number of restarts"
FAILED_JOBS_REASON = "FailedJobs"
FAILED_JOBS_MESSAGE = "jobset failed due to one or more job failures"
ALL_JOBS_COMPLETED_REASON = "AllJobsCompleted"
ALL_JOBS_COMPLETED_MESSAGE = "jobset completed successfully"
JOB_CREATION_FAILED_REASON = "JobCreationFailed"
HEADLESS_SERVICE_CREATION_FAILED_REASON = "HeadlessServiceCreationFailed"
IN_ORDER_IN_PROGRESS_REASON = "InOrderStartupPolicyInProgress"
IN_ORDER_IN_PROGRESS_MESSAGE = "in order startup policy is in progress"
IN_ORDER_COMPLETED_REASON = "InOrderStartupPolicyCompleted"
IN_ORDER_COMPLETED_MESSAGE = "in order startup policy has completed"
RESTARTING_DEFAULT_FAILURE_POLICY = "DefaultFailurePolicy"
RESTARTING_FAILURE_POLICY_FORMAT = "FailurePolicy_{}"
RESTARTING_JOBS_READY = "JobsReady"
RESTARTING_JOBSET_FAILED = "JobSetFailed"
RESTARTING_JOBSET_COMPLETED = "JobSetCompleted"
RESTARTING_JOBSET_SUSPENDED = "JobSetSuspended"
RESTARTING_JOBS_READY_MESSAGE = "all jobs are ready"
RESTARTING_JOBSET_FAILED_MESSAGE = "jobset failed"
SUSPENDED_REASON = "SuspendedJobs"
SUSPENDED_MESSAGE = "jobset is suspended"
RESUMED_REASON = "ResumeJobs"
RESUMED_MESSAGE = "jobset is resumed"
FAIL_JOBSET_ACTION_REASON = "FailJobSetFailurePolicyAction"
FAIL_JOBSET_ACTION_MESSAGE = "applying FailJobSet failure policy action"
RESTART_JOBSET_ACTION_REASON = "RestartJobSetFailurePolicyAction"
RESTART_JOBSET_ACTION_MESSAGE = "applying RestartJobSet failure policy action"
RESTART_IGNORE_MAX_ACTION_REASON = "RestartJobSetAndIgnoreMaxRestartsFailurePolicyAction"
RESTART_IGNORE_MAX_ACTION_MESSAGE = (
    "applying RestartJobSetAndIgnoreMaxRestarts failure policy action"
)

# -- spec values ---------------------------------------------------------------------------------
FAIL_JOBSET = "FailJobSet"
RESTART_JOBSET = "RestartJobSet"
RESTART_JOBSET_IGNORE_MAX = "RestartJobSetAndIgnoreMaxRestarts"
RESTART_JOB = "RestartJob"
RESTART_JOB_IGNORE_MAX = "RestartJobAndIgnoreMaxRestarts"
BLOCKING_RECREATE = "BlockingRecreate"
IN_PLACE_RESTART = "InPlaceRestart"
IN_ORDER = "InOrder"
ANY_ORDER = "AnyOrder"
OPERATOR_ALL = "All"
OPERATOR_ANY = "Any"
DEPENDENCY_READY = "Ready"
DEPENDENCY_COMPLETE = "Complete"
MAX_PARALLELISM = 50
"""Jobs created or deleted at once by one reconcile (``constants.MaxParallelism``)."""
