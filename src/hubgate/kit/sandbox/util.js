// A small `util` with Node's names, for scripts written for Open Connectors (D241). Registered
// as a CommonJS factory: `require('util')` runs it once per context.
(function (module, exports, helpers) {
  'use strict';
  const show = helpers.show;
  const stringify = JSON.stringify;
  function format(first, ...rest) {
    if (typeof first !== 'string') return [first].concat(rest).map(show).join(' ');
    let i = 0;
    const text = first.replace(/%[sdifjoO%]/g, (token) => {
      if (token === '%%') return '%';
      if (i >= rest.length) return token;
      const value = rest[i++];
      switch (token) {
        case '%s': return typeof value === 'string' ? value : show(value);
        case '%d': case '%i': return String(token === '%i' ? parseInt(value, 10) : Number(value));
        case '%f': return String(parseFloat(value));
        default: return show(value);
      }
    });
    return [text].concat(rest.slice(i).map(show)).join(' ');
  }
  module.exports = Object.freeze({
    format: format,
    inspect: show,
    inherits: (ctor, superCtor) => {
      Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
      ctor.super_ = superCtor;
    },
    isArray: Array.isArray,
    isString: (v) => typeof v === 'string',
    isNumber: (v) => typeof v === 'number',
    isBoolean: (v) => typeof v === 'boolean',
    isFunction: (v) => typeof v === 'function',
    isObject: (v) => v !== null && typeof v === 'object',
    isNullOrUndefined: (v) => v === null || v === undefined,
    isDeepStrictEqual: (a, b) => stringify(a) === stringify(b),
  });

})
