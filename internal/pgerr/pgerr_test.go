package pgerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestResponse(t *testing.T) {
	server := &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: "relation missing", Detail: "d", Hint: "h", Position: 15}
	tests := []struct {
		name                 string
		err                  error
		severity, code, want string
		fatal                bool
	}{
		{"own error", New(TooManyConnections, "pool full"), "ERROR", "53300", "pool full", false},
		{"wrapped own", fmt.Errorf("acquire: %w", Fatal(InvalidPassword, "bad")), "FATAL", "28P01", "bad", true},
		{"server error keeps fields", fmt.Errorf("x: %w", server), "ERROR", "42P01", "relation missing", false},
		{"plain error", errors.New("boom"), "FATAL", "08006", "pgninja: boom", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Response(tt.err)
			if r.Severity != tt.severity || r.Code != tt.code || r.Message != tt.want {
				t.Fatalf("got %+v", r)
			}
			if IsFatal(tt.err) != tt.fatal {
				t.Fatalf("IsFatal = %v", !tt.fatal)
			}
		})
	}
	if r := Response(server); r.Position != 15 || r.Detail != "d" || r.Hint != "h" {
		t.Fatalf("server fields lost: %+v", r)
	}
	if SQLState(fmt.Errorf("w: %w", New("22023", "x"))) != "22023" {
		t.Fatal("SQLState through wrapping")
	}
}
