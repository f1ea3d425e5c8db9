// Package router decides where each statement runs: the primary, or a
// replica chosen by weight. It is pure policy and bookkeeping — no network.
// The proxy feeds it a parser.Classification and the client's SessionState,
// the health checker (router/health*.go) keeps Backends current, and Route
// returns a Decision naming the backend and the reason.
//
// Policy (Decide): invalid hints are errors (22023); statements inside a
// transaction stay on the transaction's backend; pinned sessions stay on
// the primary; hints (/* pgninja:... */, then SET pgninja.route) override
// the rest; then writes, DDL, volatile or locking reads, utility commands and
// anything unparseable go to the primary, plain reads to a replica, and
// transactions to a replica only when read-only (BEGIN READ ONLY, SET
// TRANSACTION READ ONLY, default_transaction_read_only).
//
// Replica choice: smooth weighted round-robin (nginx's algorithm), not
// power-of-two-choices. It splits reads exactly by the configured weights
// even over short windows, needs no in-flight feedback from the proxy (so
// it cannot be skewed by a missed release), and costs one short critical
// section per read. Load imbalance between equal replicas is better fixed
// with weights; P2C would be the choice if replicas differed in speed in
// ways weights cannot express. The primary joins the rotation for reads
// when its weight is above zero.
//
// Read-your-writes: a replica is eligible only if its replay LSN has reached
// the required LSN — the client's last commit (consistency
// read_your_writes), also the last write to each table read (table), or
// nothing (eventual). When no healthy replica qualifies, reads go to the
// primary with the reason saying why.
//
// Golden routing cases live in testdata/*.json; after an intended policy
// change regenerate them with
//
//	go test ./router -run TestGolden -update
//
// and review the diff.
package router
