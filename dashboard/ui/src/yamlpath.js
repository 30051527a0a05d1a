// Find the line of a YAML document that holds a field path of the API's errors
// ("spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].image"), by indentation alone:
// enough for the block-style YAML people write for a job, and it never throws. Returns the
// 0-based line of the deepest part of the path it found, or -1.

/** "a.b[X].c[0]" -> ['a', 'b', 'X', 'c', 0]: a numeric [n] is a list index, any other [k] a key. */
export function parsePath(path) {
  const parts = [];
  for (const m of String(path).matchAll(/([^.[\]]+)|\[([^\]]*)\]/g)) {
    if (m[1] !== undefined) parts.push(m[1]);
    else parts.push(/^\d+$/.test(m[2]) ? Number(m[2]) : m[2]);
  }
  return parts;
}

const skip = (line) => /^\s*(#.*)?$/.test(line) || /^\s*(---|\.\.\.)\s*$/.test(line);
const contentColumn = (line) => line.length - line.trimStart().length;

/** The key a line starts (after any "- "), with the column it starts at; null for none. */
function keyOf(line) {
  const m = /^(\s*)((?:-\s+)*)(?:"([^"]*)"|'([^']*)'|([^\s"'#][^:#]*?))\s*:(\s|$)/.exec(line);
  if (!m) return null;
  return {key: m[3] ?? m[4] ?? m[5], column: m[1].length + m[2].length};
}

/** Where the block under a line whose content starts at `column` ends (exclusive). A list may
 * sit at its key's own column ("containers:\n- name: x"), so a "- " line at it continues. */
function blockEnd(lines, from, column, end) {
  for (let j = from + 1; j < end; j++) {
    if (skip(lines[j])) continue;
    const c = contentColumn(lines[j]);
    if (c < column || (c === column && !lines[j].trimStart().startsWith('-'))) return j;
  }
  return end;
}

export function lineOf(text, path) {
  const lines = String(text).split('\n');
  let start = 0;
  let end = lines.length;
  let found = -1;
  for (const part of parsePath(path)) {
    let hit = -1;
    let hitColumn = 0;
    if (typeof part === 'number') {
      // the n-th "- " item at the shallowest dash column of the range
      const items = [];
      let column = Infinity;
      for (let i = start; i < end; i++) {
        if (skip(lines[i]) || !lines[i].trimStart().startsWith('-')) continue;
        const c = contentColumn(lines[i]);
        if (c < column) {
          column = c;
          items.length = 0;
        }
        if (c === column) items.push(i);
      }
      if (part >= items.length) break;
      hit = items[part];
      const next = items[part + 1] ?? end;
      found = hit;
      start = hit; // the item's first key is on its dash line
      end = next;
      continue;
    }
    // a key at the shallowest key column of the range
    let column = Infinity;
    for (let i = start; i < end; i++) {
      if (skip(lines[i])) continue;
      const k = keyOf(lines[i]);
      if (!k) continue;
      if (k.column < column) {
        column = k.column;
        hit = -1;
      }
      if (k.column === column && k.key === part && hit < 0) {
        hit = i;
        hitColumn = k.column;
      }
    }
    if (hit < 0) break;
    found = hit;
    start = hit + 1;
    end = blockEnd(lines, hit, hitColumn, end);
  }
  return found;
}
