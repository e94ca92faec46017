/**
 * Runs key generations on one token one at a time. SoftHSM 2.6.1 returned CKR_GENERAL_ERROR from C_GenerateKey
 * now and then when several generations ran at once on this machine's tests and
 * benchmark, so the connector never overlaps them. Signing and reads still run concurrently.
 */
export class GenerationLock {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `work` after every generation queued before it has settled. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release = (): void => undefined;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });

    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}
