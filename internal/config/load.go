package config

import (
	"io"
	"log/slog"
)

// Load reads base, then ./.env, then the environment (read through
// getenv): variables already in the environment win over the file.
func Load(base Config, getenv func(string) string) (Config, error) {
	vars, err := LoadDotEnv(".env", getenv)
	if err != nil {
		return Config{}, err
	}
	return base.FromEnv(Overlay(getenv, vars))
}

// Logger is the logger LOG_FORMAT and LOG_LEVEL ask for, writing to w.
func (c Config) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
