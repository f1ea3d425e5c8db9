// Empty: its presence lets pollwait.go declare runtimePollWait without a
// body (the linker supplies it, see go:linkname there).
