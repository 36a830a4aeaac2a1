// bench/http-cache-tests-summary.mjs: score a results file of the
// http-cache-tests CLI (JSON: test id -> true or [kind, message]) the way
// the suite's own pages do (lib/display.mjs, dependencies honoured), and
// list every test that did not pass, with its name and message.
//
//   node http-cache-tests-summary.mjs PACKAGE_DIR RESULTS.json
import fs from 'fs'
import path from 'path'

const [pkg, file] = process.argv.slice(2)
const display = await import(path.resolve(pkg, 'lib/display.mjs'))
const tests = (await import(path.resolve(pkg, 'tests/index.mjs'))).default
tests.push((await import(path.resolve(pkg, 'tests/surrogate-control.mjs'))).default)
const results = JSON.parse(fs.readFileSync(file, 'utf8'))
const names = { '✅': 'pass', '⛔️': 'FAIL', '⚠️': 'optimal-fail', Y: 'check-yes', N: 'check-no', '🔹': 'setup-fail', '⁉️': 'harness-fail', '⚪️': 'dependency-fail', '↻': 'retry', '-': 'untested' }
const counts = {}
const lines = []
for (const suite of tests) {
  for (const test of suite.tests) {
    const sym = display.determineTestResult(tests, test.id, results)[2]
    const kind = names[sym] || sym
    counts[kind] = (counts[kind] || 0) + 1
    if (kind !== 'pass' && kind !== 'check-yes' && kind !== 'check-no' && kind !== 'untested') {
      const r = results[test.id]
      lines.push(`${kind.padEnd(15)} ${suite.id}/${test.id}: ${test.name}${Array.isArray(r) ? ' -- ' + r[1] : ''}`)
    }
  }
}
lines.sort()
for (const l of lines) console.log(l)
const scored = (counts.pass || 0) + (counts.FAIL || 0)
console.log('')
console.log('required tests: ' + (counts.pass || 0) + ' passed of ' + scored + ' scored (' +
  (100 * (counts.pass || 0) / Math.max(scored, 1)).toFixed(1) + '%)')
console.log(Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', '))
