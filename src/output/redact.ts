/** Masks credentials in text before it is printed: `user:password@` in URLs and common token forms. */
export function redact(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(:[^\s/@]*)?@/gi, '$1***@')
    .replace(/\b(authorization:\s*(?:bearer|basic)\s+)\S+/gi, '$1***')
    .replace(/\b((?:token|password|passwd|secret)=)[^\s&]+/gi, '$1***');
}
