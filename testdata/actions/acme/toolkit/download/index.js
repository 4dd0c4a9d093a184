const t = require("../lib.js");
t.run(async () => {
  const name = t.input("name", true), dest = t.workspacePath(t.input("path") || ".");
  const ids = t.backendIDs();
  const list = await t.twirp("ArtifactService", "ListArtifacts", { workflow_run_backend_id: ids.workflow_run_backend_id,
    workflow_job_run_backend_id: ids.workflow_job_run_backend_id, name_filter: name });
  const found = (list.artifacts || []).find((a) => a.name === name);
  if (!found) throw new Error(`Artifact not found for name: ${name}`);
  const signed = await t.twirp("ArtifactService", "GetSignedArtifactURL", { ...ids, name });
  const names = t.unzip(await t.getBlob(signed.signed_url), dest);
  console.log(`Artifact ${name} (id ${found.database_id}, ${found.size} bytes) downloaded: ${names.join(", ")}`);
});
