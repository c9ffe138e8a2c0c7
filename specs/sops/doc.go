// Package sops decrypts manifests encrypted with SOPS (getsops/sops) for age
// recipients, the way Flux's kustomize-controller decrypts them, without
// the sops library and its cloud KMS clients: filippo.io/age and the
// standard library are enough for the YAML format with age keys.
//
// A SOPS YAML file keeps its keys in clear and replaces every value it
// encrypts with ENC[AES256_GCM,data:…,iv:…,tag:…,type:…], sealed under a
// 32-byte data key with the value's key path ("spec:template:…:value:") as
// additional data. The data key is stored once per recipient under the
// sops key of each document (sops.age[].enc, an armored age file), and
// sops.mac is the encrypted SHA-512 of every value of the file in order, so
// a value changed, moved, added or removed after encryption is noticed.
//
// The package works on the yaml.Node trees of a file's documents and
// decrypts values in place: line and column numbers stay those of the
// encrypted file, so a manifest error still points into it. It does no I/O,
// never logs, and never puts a plaintext value in an error. It refuses what
// it does not support (PGP or cloud KMS keys only, Shamir key groups,
// comment-based encryption rules) with a message saying so.
package sops
