// Package lock makes sure only one cfrollback run changes the machine at a
// time. The lock is flock(2) on a file (gofrs/flock): the kernel releases it
// when the holding process dies, however it dies, so a run killed at 3am
// never leaves a lock that has to be removed by hand.
//
// While it holds the lock, a run writes who it is (a Holder, as JSON) into
// the lock file itself, so a second run can say who is in the way. The file
// is never deleted: removing a lock file that another process has open and
// locked would let a third process lock a new file of the same name.
package lock
