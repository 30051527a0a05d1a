"""MPIJob ``kubeflow.org/v2beta1`` (mpi-operator v0.8.2 semantics), as pure functions.

mpi-operator's MPIJob v2 runs the launcher as a batch/v1 Job and the workers as bare pods that
the launcher reaches over SSH, unlike the v1 MPIJob that the common job controller handles; so it
has its own builders and status. ``objects.py`` builds the children (ConfigMap with hostfile and
discover script, headless Service, SSH Secret, worker pods, launcher Job) and holds the small
predicates on them; ``status.py`` computes the status, conditions and events. Neither talks to the
API server; the reconciler in this package applies what they return.
"""
