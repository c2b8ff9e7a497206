// `notify` and `require` (D42, D391): compiled only into a context whose script names them.
// Called by the prelude's `extend` with its `install`, the notes array the driver reports and
// its value printer; returns the driver's `register` and `registerFp` for bundled modules.
(function (install, notes, show) {
  'use strict';

  // --- notify.email (formulas): recorded, sent by the host after the step ------------------
  install('notify', Object.freeze({
    email: function (to, subject, body) {
      notes.push({ to: String(to), subject: String(subject), body: String(body) });
    },
  }));

  // --- require of bundled modules ----------------------------------------------------------
  const factories = Object.create(null);
  const loaded = Object.create(null);
  function require(name) {
    const key = String(name);
    if (key in loaded) return loaded[key];
    if (!(key in factories)) {
      throw new Error("Cannot find module '" + key + "': only lodash, lodash/fp, moment and util are available");
    }
    loaded[key] = factories[key]();
    return loaded[key];
  }
  // The host registers a bundled source as `function (module, exports) {...}` (CommonJS
  // shape); our own modules also get the prelude's value printer.
  const helpers = Object.freeze({ show: show });
  function commonjs(factory) {
    return function () {
      const module = { exports: {} };
      factory.call(module.exports, module, module.exports, helpers);
      return module.exports;
    };
  }
  install('require', require);

  return {
    register: function (name, factory) {
      factories[name] = commonjs(factory);
    },
    registerFp: function (factory) {
      factories['lodash/fp'] = () => commonjs(factory)()(require('lodash').runInContext());
    },
  };
})
