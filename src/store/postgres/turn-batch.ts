/** One request of a batch, and how to answer it. */
export interface Pending<I, O> {
  readonly input: I;
  resolve(output: O): void;
  reject(error: unknown): void;
}

/**
 * The requests made within one turn of the event loop, handed to `run` together, one batch at a time (the
 * next turn's requests gather while one runs), as GroupCommit does: `run` answers every request it is given.
 */
export class TurnBatch<I, O> {
  readonly #run: (batch: Pending<I, O>[]) => Promise<void>;
  #batch: Pending<I, O>[] | null = null;
  #running: Promise<void> = Promise.resolve();

  constructor(run: (batch: Pending<I, O>[]) => Promise<void>) {
    this.#run = run;
  }

  add(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      let batch = this.#batch;
      if (batch === null) {
        const gathering: Pending<I, O>[] = [];
        batch = gathering;
        this.#batch = gathering;
        const previous = this.#running;
        const done = new Promise<void>((go) => setImmediate(go))
          .then(() => previous)
          .then(() => {
            this.#batch = null;
            return this.#run(gathering);
          })
          .catch((error: unknown) => {
            for (const pending of gathering) pending.reject(error);
          });
        this.#running = done;
      }
      batch.push({ input, resolve, reject });
    });
  }
}

/** Splits a batch: the first request of each key goes together, the others after, alone (their order kept). */
export function firstOfEach<T>(batch: readonly T[], key: (item: T) => string, fits: (item: T) => boolean = () => true): [T[], T[]] {
  const together: T[] = [];
  const after: T[] = [];
  const seen = new Set<string>();
  for (const item of batch) {
    const k = key(item);
    if (fits(item) && !seen.has(k)) {
      seen.add(k);
      together.push(item);
    } else after.push(item);
  }
  return [together, after];
}
