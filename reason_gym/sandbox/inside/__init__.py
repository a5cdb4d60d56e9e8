"""The part of reason_gym's sandbox that runs inside it: a fork server, the program side and the tester side.

This package is run by a separate interpreter (``python -S -s -B -m inside.zygote CONFIG``), inside bubblewrap
where the machine allows. It imports only the standard library and itself, never the rest of ``reason_gym``:
:mod:`.zygote` (the fork server), :mod:`.program`, :mod:`.tester`, :mod:`.wire` (messages and values) and
:mod:`.kernel` (prctl, seccomp, rlimits, privileges).

Three roles, three kinds of process in each worker:

- The **fork server** (PID 1 of the worker's PID namespace under bubblewrap) never runs submitted code and never
  reads a program, a test or an output: it forks one **program** process per job, hands the tester its end of the
  job's pipes, waits, kills every process of the job, reaps and empties the working directory.
- The **program** process applies the job's resource limits to itself, runs the submitted program, then serves
  the tester's requests ("call handle 3 with these arguments", "attribute x of handle 5"), answering with plain
  data (numbers, strings, lists, dicts, ...) or an opaque handle for anything else. Nothing it says is trusted.
- The **tester** (one per worker, forked once from the clean fork server; started as root it runs as a uid of its
  own, so programs cannot signal it) runs the trusted test code. The program's names (the entry point, its
  classes, its globals) are proxies there: calls go to the program process, values come back decoded into built-in
  types. Every assertion is evaluated in the tester, and it writes each test's verdict to the host through a pipe
  that only it holds.

What a pass means (the evidence): the tester, in which no submitted code ever ran and whose memory the program
cannot read (it is non-dumpable, ptrace is refused by seccomp, and its uid differs when started as root), finished
every test of the suite and each assertion held on the values the program's calls returned. The program chooses
those values and nothing else: it cannot exit early (a missing verdict is a failure), print or write a fake
verdict (the host reads verdicts from the tester's pipe only), redefine the tests, their helpers or builtins (the
tester takes from the program only the names the tests need and the test code does not define; builtins stay the
tester's), or return objects that decide comparisons (objects that are not plain data compare by identity and never
match a doctest). The tests and their expected values never enter the program's process or the fork server (whose
memory every program inherits): the host gives them to the tester through its own pipe. Programs, outputs and
verdicts of other runs never enter the fork server either.

What it does not guarantee: a program can still compute its answers any way it likes (hard-code outputs for the
inputs it is called with, for instance); a test that asserts only a truth value (``assert f(x)``) accepts any
object that is true, as in Python (the program reports its objects' truth, so a regex match works); ``str()`` of a
program object is the program's own text; and where the tester shares the program's uid (a user namespace, when
not started as root) a program can kill or stop the tester: that run then fails or times out, it never passes.
"""
