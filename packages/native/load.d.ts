/** Runs napi's platform loader (index.cjs) and returns the addon. Throws when no binary loads. */
declare function loadNativeAddon(): unknown;
export = loadNativeAddon;
