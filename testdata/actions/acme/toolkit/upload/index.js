const t = require("../lib.js");
const crypto = require("crypto");
t.run(async () => {
  const name = t.input("name"), root = t.workspacePath(t.input("path", true));
  const files = t.collect(root, require("fs").statSync(root).isDirectory() ? root : require("path").dirname(root));
  const data = t.zip(files);
  const ids = t.backendIDs();
  const req = { ...ids, name, version: 4 };
  const days = t.input("retention-days");
  if (days) req.expires_at = new Date(Date.now() + Number(days) * 86400e3).toISOString();
  const created = await t.twirp("ArtifactService", "CreateArtifact", req);
  if (!created.ok) throw new Error("CreateArtifact: not ok");
  await t.putBlocks(created.signed_upload_url, data);
  const hash = "sha256:" + crypto.createHash("sha256").update(data).digest("hex");
  const fin = await t.twirp("ArtifactService", "FinalizeArtifact", { ...ids, name, size: String(data.length), hash });
  if (!fin.ok) throw new Error("FinalizeArtifact: not ok");
  console.log(`Artifact ${name} has been successfully uploaded! Final size is ${data.length} bytes. Artifact ID is ${fin.artifact_id}`);
  t.setOutput("artifact-id", fin.artifact_id);
});
