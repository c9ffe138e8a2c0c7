//go:build race

package gossip

// raceEnabled: the race detector slows memberlist's LZW compression about
// a hundredfold (a 2 MB stream took 14 s to start here), so big-blob
// tests shrink their blobs and the 50-node test is skipped.
const raceEnabled = true
