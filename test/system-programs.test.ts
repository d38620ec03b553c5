import t from 'tap'
import { tempDir } from './helpers.js'
import { provideSystemProgram, requireSystemProgram, type SystemProgram } from './system-programs.js'

const nodeItself: SystemProgram = { name: 'node', check: `"${process.execPath}" --version >/dev/null`, packages: ['nodejs'] }
const absent: SystemProgram = { name: 'the paynotify test tool', check: 'command -v paynotify-no-such-tool >/dev/null', packages: ['paynotify-no-such-tool', 'paynotify-no-such-lib'] }

t.test('a program that is there is used as it is, with no install', async t => {
  t.equal(await provideSystemProgram(nodeItself, { canInstall: true, installCommand: 'echo must not run >&2; exit 7' }), undefined)
})

t.test('a missing program that cannot be installed here stops at once with one line naming the packages', async t => {
  const message = await provideSystemProgram(absent, { canInstall: false })
  t.equal(message, 'the paynotify test tool is missing: install paynotify-no-such-tool paynotify-no-such-lib ' +
    '(as root: apt-get install -y paynotify-no-such-tool paynotify-no-such-lib), or run the tests as root on Debian/Ubuntu to have them installed')
  const failures: string[] = []
  t.equal(await requireSystemProgram({ fail: (m: string) => failures.push(m) }, absent, { canInstall: false }), false)
  t.same(failures, [message], 'the test fails with that line')
})

t.test('a failed install says why, in one line', async t => {
  const message = await provideSystemProgram(absent, { canInstall: true, installCommand: 'echo "Reading package lists..." >&2; echo "E: Unable to locate package paynotify-no-such-tool" >&2; exit 100' })
  t.equal(message, 'the paynotify test tool is missing and installing paynotify-no-such-tool paynotify-no-such-lib failed (E: Unable to locate package paynotify-no-such-tool): install paynotify-no-such-tool paynotify-no-such-lib by hand')
})

t.test('an install that works makes the program usable', async t => {
  // The "install" creates the program the check looks for, as apt-get would.
  const dir = tempDir(t)
  const made: SystemProgram = { name: 'a made tool', check: `test -x "${dir}/tool"`, packages: ['tool'] }
  t.equal(await provideSystemProgram(made, { canInstall: true, installCommand: `printf '#!/bin/sh\\n' > "${dir}/tool" && chmod +x "${dir}/tool"` }), undefined)
})
