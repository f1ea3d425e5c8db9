package pgerr

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes pgninja itself raises.
const (
	ProtocolViolation            = "08P01"
	ConnectionFailure            = "08006"
	ConnectionException          = "08000"
	InvalidAuthorization         = "28000"
	InvalidPassword              = "28P01"
	InvalidCatalogName           = "3D000"
	TooManyConnections           = "53300"
	AdminShutdown                = "57P01"
	CannotConnectNow             = "57P03"
	QueryCanceled                = "57014"
	FeatureNotSupported          = "0A000"
	InvalidParameterValue        = "22023"
	InternalError                = "XX000"
	IdleSessionTimeout           = "25P03" // idle_in_transaction_session_timeout
	IdleSessionTimeoutOutside    = "57P05" // idle_session_timeout
	DuplicatePrepared            = "42P05"
	InvalidSQLStatementName      = "26000"
	ObjectNotInPrerequisiteState = "55000"
	ReadOnlySQLTransaction       = "25006"
	InsufficientPrivilege        = "42501"
	SyntaxError                  = "42601"
	ConfigFileError              = "F0000"
	UndefinedObject              = "42704"
	CantChangeRuntimeParam       = "55P02"
)

// Severities as PostgreSQL spells them.
const (
	SeverityError = "ERROR"
	SeverityFatal = "FATAL"
)

// Error is an error raised by pgninja with the SQLSTATE the client sees.
type Error struct {
	Severity string
	Code     string
	Message  string
	Detail   string
	Hint     string
	// Routine names the PostgreSQL function that raises the error, for an
	// error the proxy gives in PostgreSQL's place: some drivers tell
	// errors apart by it.
	Routine string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s (SQLSTATE %s): %v", e.Message, e.Code, e.Cause)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code)
}

// SQLState returns the error's code, as pgconn.PgError does.
func (e *Error) SQLState() string { return e.Code }

func (e *Error) Unwrap() error { return e.Cause }

// New makes an ERROR-severity error.
func New(code, format string, args ...any) *Error {
	return &Error{Severity: SeverityError, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fatal makes a FATAL-severity error: the client's connection ends after it.
func Fatal(code, format string, args ...any) *Error {
	return &Error{Severity: SeverityFatal, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches cause to a new error with the given code.
func Wrap(cause error, severity, code, format string, args ...any) *Error {
	return &Error{Severity: severity, Code: code, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// WithHint returns e with a hint set.
func (e *Error) WithHint(h string) *Error { e.Hint = h; return e }

// WithDetail returns e with a detail set.
func (e *Error) WithDetail(d string) *Error { e.Detail = d; return e }

// IsFatal reports whether err ends the client's connection.
func IsFatal(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Severity == SeverityFatal || e.Severity == "PANIC"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity == SeverityFatal || pe.Severity == "PANIC"
	}
	return true
}

// SQLState returns err's code, or "" when it has none.
func SQLState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// Response flattens err into the one ErrorResponse the client sees. A
// server's own error keeps every field it came with; anything without a
// SQLSTATE becomes a FATAL connection failure, since the proxy cannot
// vouch for the session after an unclassified fault.
func Response(err error) *pgproto3.ErrorResponse {
	var e *Error
	if errors.As(err, &e) {
		msg := e.Message
		return &pgproto3.ErrorResponse{Severity: e.Severity, SeverityUnlocalized: e.Severity,
			Code: e.Code, Message: msg, Detail: e.Detail, Hint: e.Hint, Routine: e.Routine}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &pgproto3.ErrorResponse{
			Severity: pe.Severity, SeverityUnlocalized: pe.SeverityUnlocalized, Code: pe.Code,
			Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint, Position: pe.Position,
			InternalPosition: pe.InternalPosition, InternalQuery: pe.InternalQuery, Where: pe.Where,
			SchemaName: pe.SchemaName, TableName: pe.TableName, ColumnName: pe.ColumnName,
			DataTypeName: pe.DataTypeName, ConstraintName: pe.ConstraintName, File: pe.File,
			Line: pe.Line, Routine: pe.Routine,
		}
	}
	return &pgproto3.ErrorResponse{Severity: SeverityFatal, SeverityUnlocalized: SeverityFatal,
		Code: ConnectionFailure, Message: "pgninja: " + err.Error()}
}
