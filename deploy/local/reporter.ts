/** Progress lines of the stack command, one per step, prefixed with the profile name. */
export interface Reporter {
  step(message: string): void;
  warn(message: string): void;
}

export function createReporter(profileName: string): Reporter {
  return {
    step: (message) => console.log(`[stack:${profileName}] ${message}`),
    warn: (message) => console.warn(`[stack:${profileName}] warning: ${message}`),
  };
}
