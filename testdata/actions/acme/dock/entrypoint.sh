echo "docker action says: $1 $2"
echo "input: $INPUT_WORD, runs.env: $FROM_RUNS_ENV, workspace: $(pwd), readme: $(cat README)"
echo "said=$1" >> "$GITHUB_OUTPUT"
