package pipeline

import _ "embed"

// Schema is the JSON Schema of the pipeline file, for editors (yaml-language-server and the
// like): `sagedeploy pipeline schema` prints it.
//
//go:embed schema.json
var Schema []byte

// Example is a commented pipeline file with a dev and a gated, cross-account prod environment:
// `sagedeploy pipeline init` writes it.
//
//go:embed example.yaml
var Example []byte
