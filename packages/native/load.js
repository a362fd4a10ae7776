// peregrine's way in to the addon: a module that never throws when imported. Requiring
// index.cjs runs napi's platform loader, which throws when no binary loads, so
// peregrine calls this only when it needs the native server, and falls back on error.
// CommonJS, so that `require` resolves from this package under both of peregrine's builds.

module.exports = function loadNativeAddon() {
  return require("./index.cjs");
};
