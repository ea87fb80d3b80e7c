// Secret masking for everything gkube prints or writes. Two shapes of secret are recognised:
// credentials in a URL (`scheme://user:password@host`) and values of secret-named keys
// (`password=…`, `API_TOKEN=…`, `--db-pass=…`). A password may hold any character, `/` and `@`
// included, so a URL's credentials are masked up to the LAST `@` of the URL, never up to the first
// `/` or `@`. Masking too much is the safe failure; masking too little is a leak.

/** Names whose value is a secret, wherever they appear in a key (`API_TOKEN`, `db.password`, `--registry-auth`). */
const secretWord = 'token|pass|secret|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth';

// `scheme://` then everything up to the last `@` before a space: in text a URL ends at whitespace.
const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/)\S*@/gi;
const authorizationHeader = /\b(authorization:\s*(?:bearer|basic)\s+)\S+/gi;
// `<name holding a secret word>=<value>`. The key may hold `_`, `.` and `-` (`API_TOKEN=`), which a
// `\b` before the word would miss. The value, first alternative that fits:
//   `***` masked already (`--set container.env.API_TOKEN=***: …`): the punctuation after it stays;
//   `\"…\"` a quoted value inside a JSON string (`-o json`, --summary-file), up to the escaped
//            quote that closes it, never past the raw `"` that ends the JSON string;
//   `"…"` or `'…'` a quoted value, closed on the same line;
//   a run of characters up to white space, `&` or a raw `"` (escapes taken whole), so that JSON
//            keeps the quote that ends its string;
//   an unclosed `"…`.
const secretValue = [
  String.raw`\*{3}(?=:?(?:[\s'"]|$))`,
  String.raw`\\"(?:[^"\\\n]|\\[^"])*(?:\\")?`,
  String.raw`"(?![\s,:\]}]|$)[^"\n]*"`,
  String.raw`'(?![\s,]|$)[^'\n]*'`,
  String.raw`(?:\\.|[^\s&"\\])+`,
  String.raw`"(?![\s,:\]}]|$)[^\s&"]*`,
].join('|');
const secretAssignment = new RegExp(String.raw`([\w.-]*(?:${secretWord})[\w.-]*=)(?:${secretValue})`, 'gi');
const secretName = new RegExp(secretWord, 'i');

/** True when a key or flag name says its value is a secret (`API_TOKEN`, `password`, `registry-auth`). */
export function isSecretName(name: string): boolean {
  return secretName.test(name);
}
const secretKey = new RegExp(String.raw`[\w.-]*(?:${secretWord})[\w.-]*=`, 'i');
const scheme = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Masks credentials in text before it is printed: `user:password@` in URLs, bearer/basic authorization, and values of secret-named keys. */
export function redact(text: string): string {
  return text.replace(urlCredentials, '$1***@').replace(authorizationHeader, '$1***').replace(secretAssignment, '$1***');
}

/**
 * Masks one whole value given by the user (an endpoint, a command-line argument), whatever
 * characters its secret holds: a URL's credentials up to its last `@` (with or without a
 * scheme, so `root:pw@etcd-1:2379` too), and everything after `=` when the name before it is a
 * secret's (`--db-password=a b`). Then `redact` for anything else.
 */
export function redactValue(value: string): string {
  const flag = /^(-{1,2}[^=\s]*=)([\s\S]*)$/.exec(value);
  if (flag) return secretName.test(flag[1]!) ? `${flag[1]!}***` : `${flag[1]!}${redactValue(flag[2]!)}`;
  // The secret-named value first: its own `@`s must not be taken for a URL's.
  const named = secretKey.exec(value);
  const masked = named ? `${value.slice(0, named.index + named[0].length)}***` : value;
  const at = masked.lastIndexOf('@');
  if (at < 0) return redact(masked);
  const prefix = scheme.exec(masked)?.[0] ?? '';
  return redact(`${prefix}***${masked.slice(at)}`);
}

/** Masks, in text that quotes command-line arguments (the parser's errors), each argument that holds a secret, then the text as `redact` does. */
export function redactArgs(text: string, args: readonly string[]): string {
  let out = text;
  // Longest first, so that an argument which contains another is replaced whole.
  for (const arg of [...args].sort((a, b) => b.length - a.length)) {
    const masked = redactValue(arg);
    if (masked !== arg && arg !== '') out = out.split(arg).join(masked);
  }
  return redact(out);
}
