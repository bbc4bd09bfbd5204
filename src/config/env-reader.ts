import { Invalid } from "./parsers.js";
import type { DefaultedVariable, Variable } from "./variables.js";

export type Environment = Record<string, string | undefined>;

/**
 * Reads the variables of the table (src/config/variables.ts) from one environment, collecting every problem
 * instead of stopping at the first, so that start-up names them all at once. A read that meets a problem
 * answers the variable's default (or undefined) as a stand-in; `loadConfig` throws before any stand-in is used.
 */
export class EnvReader {
  /** One readable message per bad value, in the order they were read. */
  readonly problems: string[] = [];
  /** Things worth a warning at start-up. */
  readonly warnings: string[] = [];
  readonly #env: Environment;

  constructor(env: Environment) {
    this.#env = env;
  }

  /** The variable's text, trimmed; undefined when it is unset or blank. */
  raw(variable: Variable<unknown>): string | undefined {
    const value = this.#env[variable.name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  }

  isSet(variable: Variable<unknown>): boolean {
    return this.raw(variable) !== undefined;
  }

  /**
   * The variable's value: its text, else `fallback` (a default that depends on other variables), else its
   * default, read by its parser. A bad value is recorded as a problem and answers the default instead.
   */
  read<T>(variable: DefaultedVariable<T>): T;
  read<T>(variable: Variable<T>, fallback?: string): T | undefined;
  read<T>(variable: Variable<T>, fallback?: string): T | undefined {
    const raw = this.raw(variable) ?? fallback ?? variable.default;
    if (raw === undefined) return undefined;
    const value = variable.parse(raw, variable.name);
    if (!(value instanceof Invalid)) return value;
    this.problems.push(...value.problems);
    if (variable.default === undefined) return undefined;
    const standIn = variable.parse(variable.default, variable.name);
    return standIn instanceof Invalid ? undefined : standIn;
  }

  /** Records a problem that involves more than one variable. */
  problem(message: string): void {
    this.problems.push(message);
  }

  warn(message: string): void {
    this.warnings.push(message);
  }
}
