// The prelude's rarely needed parts (D441): printing values, capturing console.log, the
// driver's `install`, `extend` and one-call `call`/`result`, the outcomes of a batch with a
// value JSON cannot hold, and reading the console after a failure. Handed to the prelude as a string
// and compiled the first time a context needs one of them, so a request whose script logs
// nothing, fails nothing and names no helper never compiles this. Called with the global
// object, the prelude's `state` (console lines, notify records, the compiled script) and
// the JSON functions as they were before any script ran.
(function (global, state, stringify, parse) {
  'use strict';
  // Bounded: a chatty loop cannot grow the answer without end.
  const CONSOLE_MAX_CHARS = 65536;

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
  function install(name, value) {
    Object.defineProperty(global, name, { value: value, writable: false, configurable: false });
  }
  const helpers = {
    show: show,
    install: install,
    // Adds notify and require (modules.js) to a context whose script names them.
    extend: function (factory) {
      Object.assign(helpers, factory(install, state.notes, show));
    },
    log: function (values) {
      if (state.truncated) return;
      const line = values.map(show).join(' ');
      if (state.chars + line.length > CONSOLE_MAX_CHARS) {
        state.truncated = true;
        state.lines.push('[console output truncated]');
        return;
      }
      state.chars += line.length;
      state.lines.push(line);
    },
    // What a throw in a batch's record becomes; running out of memory ends the batch.
    thrown: function (error) {
      if (error === null || (error instanceof InternalError && /out of memory/.test(error.message))) {
        throw error;
      }
      return show(error);
    },
    // The prelude's `results` when some record's value cannot be JSON: that record gets
    // `bad`, the error's text, in place of its value.
    results: function (answer) {
      for (const record of answer.records) {
        try {
          stringify(record.value);
        } catch (error) {
          delete record.value;
          record.bad = show(error);
        }
      }
      return stringify(answer);
    },
    call: function (argsJson) {
      const args = parse(argsJson);
      const outcome = { called: false, value: undefined };
      state.outcome = outcome;
      args.push(function (value) {
        if (!outcome.called) {
          outcome.called = true;
          outcome.value = value;
        }
      });
      state.script.apply(undefined, args);
    },
    result: function () {
      const outcome = state.outcome;
      state.outcome = null;
      const value = outcome.value === undefined ? null : outcome.value;
      // Validate first: a value JSON cannot hold must not cost the console lines.
      stringify(value);
      return stringify({ called: outcome.called, value: value, lines: state.lines.splice(0), notes: state.notes.splice(0) });
    },
    console: function () {
      return stringify({ lines: state.lines.splice(0), notes: state.notes.splice(0) });
    },
  };
  return helpers;
})
