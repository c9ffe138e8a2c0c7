// Package proc reads what kelpie needs to know about host processes from
// /proc: when a process started, and which processes descend from one. It
// never changes a process.
package proc
