// Package source owns kelpie's view of git: cloning and fetching with go-git,
// resolving refs and revisions, mirrors and bundles, and the triggers (poll,
// fsnotify, webhook) that say a new commit may be there. What it yields is a
// commit and an fs.FS over that commit's tree, read straight from the object
// store.
//
// source never parses manifests: it hands the fs.FS to specs and stops there.
//
// The local part, used by `kelpie diff`, is [OpenLocal], [Repo.Resolve] and
// [Repo.FS]. The remote part, used by the agent, is [NewRemote] with
// [Remote.Fetch] (a bare cache fetched incrementally from the first URL that
// answers, fast-forward and signature checks) and [Remote.Maintain], and the
// triggers [WatchRefs] and [WebhookHandler].
package source
