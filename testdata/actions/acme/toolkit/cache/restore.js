const t = require("../lib.js");
const crypto = require("crypto");
t.run(async () => {
  const key = t.input("key", true), p = t.input("path", true);
  const restoreKeys = t.input("restore-keys").split("\n").map((s) => s.trim()).filter(Boolean);
  const version = crypto.createHash("sha256").update([p, "zip"].join("|")).digest("hex");
  t.saveState("key", key);
  t.saveState("version", version);
  const res = await t.twirp("CacheService", "GetCacheEntryDownloadURL", { key, restore_keys: restoreKeys, version });
  if (!res.ok) {
    console.log(`Cache not found for input keys: ${[key, ...restoreKeys].join(", ")}`);
    t.setOutput("cache-hit", "false");
    return;
  }
  t.unzip(await t.getBlob(res.signed_download_url), t.workspacePath("."));
  t.saveState("matched", res.matched_key);
  t.setOutput("cache-hit", String(res.matched_key === key));
  console.log(`Cache restored from key: ${res.matched_key}`);
});
