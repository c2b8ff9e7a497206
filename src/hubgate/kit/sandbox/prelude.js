// The sandbox prelude (D42): evaluated first in every fresh QuickJS context, before any script.
// It leaves `console` on the global object and returns the driver the host uses to add
// `notify` and `require` (modules.js), `CE` (ce.js) and bundled modules (util.js, lodash,
// moment) when the script's text names them (D391: QuickJS compiles every line it is given, so
// a fresh context's cost is the source it compiles), and to compile and call the script. Everything here is plain
// JavaScript: QuickJS refuses host callbacks while a time limit is set, which also means no
// script can ever reach a Python object.
(function (global) {
  'use strict';
  const parse = JSON.parse;
  const stringify = JSON.stringify;

  // Shared memory and blocking waits could hold a thread outside the engine's interrupt
  // checks; weak references expose collection timing. None is needed by scripts.
  for (const name of ['Atomics', 'SharedArrayBuffer', 'WeakRef', 'FinalizationRegistry']) {
    delete global[name];
  }

  // --- console.log capture (bounded: a chatty loop cannot grow the answer without end) -----
  const CONSOLE_MAX_CHARS = 65536;
  const lines = [];
  let consoleChars = 0;
  let consoleTruncated = false;
  function show(value) {
    if (typeof value === 'string') return value;
    if (value === undefined) return 'undefined';
    if (typeof value === 'function') return '[Function' + (value.name ? ': ' + value.name : '') + ']';
    if (typeof value === 'bigint') return value.toString() + 'n';
    if (typeof value === 'symbol') return value.toString();
    if (value instanceof Error) return value.name + ': ' + value.message;
    try {
      const text = stringify(value);
      return text === undefined ? String(value) : text;
    } catch (error) {
      return String(value);
    }
  }
  function log(...values) {
    if (consoleTruncated) return;
    const line = values.map(show).join(' ');
    if (consoleChars + line.length > CONSOLE_MAX_CHARS) {
      consoleTruncated = true;
      lines.push('[console output truncated]');
      return;
    }
    consoleChars += line.length;
    lines.push(line);
  }
  const console = Object.freeze({ log: log, info: log, warn: log, error: log, debug: log });

  // notify.email's records; `extend` (modules.js) adds the function itself.
  const notes = [];

  function install(name, value) {
    Object.defineProperty(global, name, { value: value, writable: false, configurable: false });
  }

  // --- the driver the host calls -----------------------------------------------------------
  let script = null;
  let params = [];
  let outcome = null;
  let batch = [];
  const driver = {
    install: install,
    // Adds notify and require (modules.js) to a context whose script names them.
    extend: function (factory) {
      Object.assign(driver, factory(install, notes, show));
    },
    compile: function (paramsJson, body) {
      params = parse(paramsJson);
      script = Function(...params, 'done', "'use strict';\n" + body);
    },
    call: function (argsJson) {
      const args = parse(argsJson);
      const state = { called: false, value: undefined };
      outcome = state;
      const done = function (value) {
        if (!state.called) {
          state.called = true;
          state.value = value;
        }
      };
      script.apply(undefined, params.map((name) => args[name]).concat([done]));
    },
    // Many calls in one crossing (a request's records): each record's outcome and console
    // lines are kept apart. A thrown error fails its own record only; the engine's interrupt
    // (the time limit) cannot be caught, and running out of memory is passed on, so both end
    // the batch and the host fails the records not done yet.
    callAll: function (argsJson) {
      const all = parse(argsJson);
      batch = [];
      for (let n = 0; n < all.length; n++) {
        const state = { called: false, value: undefined, error: null, start: lines.length, noteStart: notes.length };
        batch.push(state);
        const done = function (value) {
          if (!state.called) {
            state.called = true;
            state.value = value;
          }
        };
        try {
          script.apply(undefined, params.map((name) => all[n][name]).concat([done]));
        } catch (error) {
          if (error === null || (error instanceof InternalError && /out of memory/.test(error.message))) {
            throw error;
          }
          state.error = show(error);
        }
      }
    },
    // Read after the host has run the pending jobs, so `done` may be called from a promise.
    results: function () {
      const states = batch;
      batch = [];
      const outcomes = states.map(function (state, n) {
        const last = n + 1 === states.length;
        const end = last ? lines.length : states[n + 1].start;
        const noteEnd = last ? notes.length : states[n + 1].noteStart;
        const found = {
          called: state.called,
          error: state.error,
          lines: lines.slice(state.start, end),
          notes: notes.slice(state.noteStart, noteEnd),
        };
        if (state.called && state.error === null) {
          const value = state.value === undefined ? null : state.value;
          try {
            stringify(value);
            found.value = value;
          } catch (error) {
            found.bad = show(error);
          }
        }
        return found;
      });
      lines.splice(0);
      notes.splice(0);
      return stringify(outcomes);
    },
    result: function () {
      const state = outcome;
      outcome = null;
      const value = state.value === undefined ? null : state.value;
      // Validate first: a value JSON cannot hold must not cost the console lines.
      stringify(value);
      return stringify({ called: state.called, value: value, lines: lines.splice(0), notes: notes.splice(0) });
    },
    console: function () {
      return stringify({ lines: lines.splice(0), notes: notes.splice(0) });
    },
  };

  install('console', console);
  return driver;
})
