/**
 * Builds the WHERE clause of a listing from optional filters, numbering parameters as it goes,
 * and the LIMIT after them. A filter with a value `undefined` (or `null`: an absent time) is left out. @internal
 */
export class ListQuery {
  readonly values: unknown[] = [];
  private readonly conditions: string[] = [];

  /** Adds `condition` (which names its parameters `$1`, `$2`… of its own) unless a value is absent. */
  where(condition: string, ...params: unknown[]): this {
    if (params.some((param) => param === undefined || param === null)) return this;
    const offset = this.values.length;
    this.values.push(...params);
    this.conditions.push(condition.replace(/\$(\d+)/g, (_, n: string) => `$${offset + Number(n)}`));
    return this;
  }

  /** `WHERE …` (or nothing), then `ORDER BY order LIMIT $n` with `limit` as the last parameter. */
  build(order: string, limit: number): string {
    this.values.push(limit);
    const where = this.conditions.length > 0 ? `WHERE ${this.conditions.join(" AND ")} ` : "";
    return `${where}ORDER BY ${order} LIMIT $${this.values.length}`;
  }
}
