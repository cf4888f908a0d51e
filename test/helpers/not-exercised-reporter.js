// Lists, at the end of a jest run, the tests skipped for want of a system tool or of
// root (test/helpers/needs.ts puts "[needs …]" in their titles), grouped by what is missing.
class NotExercisedReporter {
  onRunComplete(_contexts, results) {
    const byNeed = new Map();
    for (const file of results.testResults) {
      for (const test of file.testResults) {
        if (test.status !== 'pending' && test.status !== 'skipped') continue;
        const match = /\[needs ([^\]]+)\]/.exec(test.title);
        if (!match) continue;
        const name = [...test.ancestorTitles, test.title.replace(match[0], '').trim()].join(' > ');
        const where = file.testFilePath.replace(/^.*\/test\//, 'test/');
        const list = byNeed.get(match[1]) ?? [];
        list.push(`${where}: ${name}`);
        byNeed.set(match[1], list);
      }
    }
    if (byNeed.size === 0) return;
    const total = [...byNeed.values()].reduce((n, list) => n + list.length, 0);
    const lines = [`Not exercised on this machine: ${total} test${total === 1 ? '' : 's'} skipped for what it lacks (.ci/run installs the tools and runs as root):`];
    for (const [need, list] of byNeed) {
      lines.push(`  needs ${need}: ${list.length}`);
      for (const item of list) lines.push(`    - ${item}`);
    }
    // After jest's own summary, as the run's last lines (stderr is synchronous on Linux).
    process.once('exit', () => process.stderr.write(`\n${lines.join('\n')}\n`));
  }
}
module.exports = NotExercisedReporter;
