const t = require("../lib.js");
const fs = require("fs");
t.run(async () => {
  const key = process.env.STATE_key, version = process.env.STATE_version;
  if (process.env.STATE_matched === key) {
    console.log(`Cache hit occurred on the primary key ${key}, not saving cache.`);
    return;
  }
  const root = t.workspacePath(t.input("path", true));
  if (!fs.existsSync(root)) {
    console.log(`::warning::Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.`);
    return;
  }
  const data = t.zip(t.collect(root, t.workspacePath(".")));
  const created = await t.twirp("CacheService", "CreateCacheEntry", { key, version });
  if (!created.ok) throw new Error("CreateCacheEntry: not ok");
  await t.putBlob(created.signed_upload_url, data);
  const fin = await t.twirp("CacheService", "FinalizeCacheEntryUpload", { key, version, size_bytes: String(data.length) });
  if (!fin.ok) throw new Error(`FinalizeCacheEntryUpload: ${fin.message}`);
  console.log(`Cache saved with key: ${key} (entry ${fin.entry_id}, ${data.length} bytes)`);
});
