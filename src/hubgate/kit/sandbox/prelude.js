// The sandbox prelude (D42): evaluated first in every fresh QuickJS context, before any script.
// It leaves `console` on the global object and returns the driver the host uses to compile
// the script, call it for a batch of records and read the outcomes: one function taking the
// name of what to do, so that the host's whole opening is one `eval` and one call, and the
// driver is never on the global object (D491). QuickJS compiles every line it is given, at
// about 0.07 ms per kilobyte of code here, so this file holds only what every request runs
// (D441): value printing, console capture, the one-call driver, `install` and `extend` (for
// `CE`, `notify`, `require`) are in rare.js, which the host hands in as a string (`rare`) and
// which is compiled the first time a context needs one of them. Everything is plain
// JavaScript: QuickJS refuses host callbacks while a time limit is set, which also means no
// script can ever reach a Python object.
(function (rare) {
  'use strict';
  const global = globalThis;
  // Shared memory and blocking waits could hold a thread outside the engine's interrupt
  // checks; weak references expose collection timing. None is needed by scripts.
  delete global.Atomics;
  delete global.SharedArrayBuffer;
  delete global.WeakRef;
  delete global.FinalizationRegistry;

  // Taken now, before any script can replace them; rare.js gets these too, since it may be
  // compiled after the script ran.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const compile = Function;
  // What rare.js reads and writes: console lines, notify.email's records, the script.
  const state = { lines: [], notes: [], chars: 0, truncated: false, script: null, outcome: null };
  let helpers = null;
  const more = () => helpers || (helpers = compile('return (' + rare + '\n)')()(global, state, stringify, parse));
  const log = (...values) => more().log(values);
  Object.defineProperty(global, 'console', {
    value: Object.freeze({ log: log, info: log, warn: log, error: log, debug: log }),
  });

  let batch = [];
  const driver = {
    // The host's way to rare.js: `rare('call', argsJson)`, `rare('install', 'CE', value)`.
    rare: (name, ...values) => more()[name](...values),
    compile: function (paramsJson, body) {
      state.script = compile(...parse(paramsJson), 'done', "'use strict';\n" + body);
    },
    // Many calls in one crossing (a request's records), each given as the list of its
    // arguments in parameter order: each record's outcome and console lines are kept apart.
    // A thrown error fails its own record only (rare.js `thrown`); the engine's interrupt (the
    // time limit) cannot be caught, and running out of memory is passed on, so both end the
    // batch and the host fails the records not done yet.
    callAll: function (rowsJson) {
      const rows = parse(rowsJson);
      batch = [];
      for (let n = 0; n < rows.length; n++) {
        const record = { called: false, error: null, start: state.lines.length, noteStart: state.notes.length };
        batch.push(record);
        rows[n].push(function (value) {
          if (!record.called) {
            record.called = true;
            record.value = value;
          }
        });
        try {
          state.script.apply(undefined, rows[n]);
        } catch (error) {
          record.error = more().thrown(error);
        }
      }
    },
    // Read after the host has run the pending jobs, so `done` may be called from a promise.
    // One JSON text: the records (each with where its console lines and notes start) and
    // the lines and notes themselves, which the host cuts per record. A value JSON cannot
    // hold makes rare.js write it record by record.
    results: function () {
      const answer = { records: batch, lines: state.lines, notes: state.notes };
      let text;
      try {
        text = stringify(answer);
      } catch (error) {
        text = more().results(answer);
      }
      batch = [];
      state.lines.splice(0);
      state.notes.splice(0);
      return text;
    },
  };
  // Fixed arity: a spread would go through the array iterator, which a script can replace.
  return (name, a, b, c) => driver[name](a, b, c);
})
