/**
 * Counts passed and failed tests from node:test output. The spec reporter ends a run with
 * `ℹ pass N`, `ℹ fail N` and `ℹ cancelled N`, and the TAP reporter with the same words after `#`.
 * Cancelled tests (their hook failed or they timed out) count as failed. Every run in the output
 * adds to the totals, including the output Nx replays for cached packages.
 */
export interface TestCounts {
  passed: number;
  failed: number;
}

const SUMMARY_LINE =
  /^\s*(?:\[[^\]]*\]\s*)?(?:[\w@/.:-]+:\s+)?(?:ℹ|#)\s+(pass|fail|cancelled)\s+(\d+)\s*$/gm;

/** SGR color sequences, which the spec reporter and Nx add when they decide colors are wanted. */
const COLOR_SEQUENCE = /\x1b\[[0-9;]*m/g;

export function countTests(output: string): TestCounts {
  const counts: TestCounts = { passed: 0, failed: 0 };
  for (const match of output.replace(COLOR_SEQUENCE, '').matchAll(SUMMARY_LINE)) {
    const count = Number.parseInt(match[2] as string, 10);
    if (match[1] === 'pass') {
      counts.passed += count;
    } else {
      counts.failed += count;
    }
  }
  return counts;
}
