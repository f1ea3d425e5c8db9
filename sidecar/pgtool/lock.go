package pgtool

import (
	"context"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// LockKey turns a job name into a pg_advisory_lock key; the names are
// namespaced ("pgninja/...") so they do not collide with the application's
// own advisory locks.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// TryLock takes the session-level advisory lock without waiting.
func TryLock(ctx context.Context, conn *pgx.Conn, key int64) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
	return ok, err
}

// Lock waits for the session-level advisory lock (or ctx).
func Lock(ctx context.Context, conn *pgx.Conn, key int64) error {
	_, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
	return err
}

// Unlock releases the lock. It uses its own context: the caller's may
// already be cancelled, and a lock left behind would block the next run
// until the connection closes.
func Unlock(conn *pgx.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
}
