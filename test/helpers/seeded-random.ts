/** A small deterministic generator for tests that compare a fast path with the general one on generated inputs (same inputs every run). */
export function seededRandom(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % below;
  };
}
