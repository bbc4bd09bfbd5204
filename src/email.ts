/**
 * An email address as a destination: trimmed, lower-cased (mailbox names are case-insensitive in
 * practice, and one address must be one challenge), and of the shape local@domain.tld; null otherwise.
 */
export function normaliseEmail(input: string): string | null {
  const address = input.trim().toLowerCase();
  if (address.length > 254) return null;
  return /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.test(address)
    ? address
    : null;
}
