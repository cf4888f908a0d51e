// ereceipt-auth(8), made from the text `--help` prints, so the two never disagree:
// its usage line, the commands and options (a term, then its explanation, which may
// run over several lines), and the exit statuses, with the files it uses added.

/** Escapes text for roff: backslashes, and a leading dot or quote. */
const roff = (text) => text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/, '\\&$1');

/** Splits a "Commands:" or "Options:" block into [term, explanation] pairs. */
function entries(lines) {
  const items = [];
  for (const line of lines) {
    const m = /^ {2}(\S.*?)(?: {2,}(\S.*))?$/.exec(line);
    if (m && !/^ {3,}/.test(line)) items.push([m[1], m[2] ?? '']);
    else if (items.length > 0) {
      const last = items[items.length - 1];
      last[1] = `${last[1]} ${line.trim()}`.trim();
    }
  }
  return items;
}

export function manPage(help, version) {
  const lines = help.replace(/\n+$/, '').split('\n');
  const usage = /^Usage: (.*)$/.exec(lines[0] ?? '');
  if (!usage) throw new Error('man page: --help no longer starts with "Usage:"');
  const block = (title) => {
    const start = lines.indexOf(`${title}:`);
    if (start === -1) throw new Error(`man page: --help has no "${title}:" section`);
    const body = [];
    for (const line of lines.slice(start + 1)) {
      if (line === '') break;
      body.push(line);
    }
    return body;
  };
  const exit = lines.slice(lines.findIndex((l) => l.startsWith('Exit status:'))).join(' ').replace(/^Exit status:\s*/, '');
  const list = (items) => items.map(([term, text]) => `.TP\n.B ${roff(term)}\n${roff(text)}`).join('\n');
  return `.TH ERECEIPT-AUTH 8 "" "ereceipt-auth ${version}" "System Administration"
.SH NAME
ereceipt-auth \\- eReceipt POS authentication with the Egyptian Tax Authority
.SH SYNOPSIS
.B ${roff(usage[1])}
.SH DESCRIPTION
Logs the terminal in to the tax authority's eReceipt identity service and keeps a
valid access token in the token file for the POS application.
.SH COMMANDS
${list(entries(block('Commands')))}
.SH OPTIONS
${list(entries(block('Options')))}
.SH EXIT STATUS
${roff(exit)}
.SH FILES
.TP
.I /etc/ereceipt-auth/config.json
the configuration
.TP
.I /var/lib/ereceipt-auth/credentials
the encrypted credentials, written by \\fBprovision\\fR
.TP
.I /run/ereceipt-auth/token.json
the current access token, for the POS application
.TP
.I /etc/default/ereceipt-auth
settings of the SysV init script
.SH SEE ALSO
.I /usr/share/doc/ereceipt-auth/README.md.gz
`;
}
