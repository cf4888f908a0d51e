/** Names an unexpected argument without echoing what could be a pasted secret. */
export function describeArg(arg: string): string {
  if (arg.startsWith('-')) {
    const name = arg.split('=')[0] as string;
    return /^--?[A-Za-z][A-Za-z0-9-]{0,30}$/.test(name) ? `the option ${name}` : 'an option';
  }
  return 'arguments';
}
