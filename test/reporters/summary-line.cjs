// Prints jest's own pass/fail counts as one plain line, "N passed, N failed", for CI to read.
class SummaryLine {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const suitesBroken = results.numRuntimeErrorTestSuites;
    // A suite that fails to load has no test results; count it as a failure so it is never hidden.
    const failed = results.numFailedTests + suitesBroken;
    process.stdout.write(`\n${results.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '') + '\n');
  }
}
module.exports = SummaryLine;
