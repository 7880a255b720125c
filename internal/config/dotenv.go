package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/joho/godotenv"
)

// LoadDotEnv reads KEY=VALUE lines from path with godotenv (the original
// server's .env format: # comments, quotes, "export "). Variables already
// in the environment win, so a deployment's settings are never overridden by
// a stray file. A missing file is no error.
func LoadDotEnv(path string, getenv func(string) string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	parsed, err := godotenv.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vars := make(map[string]string, len(parsed))
	for k, v := range parsed {
		if getenv(k) == "" {
			vars[k] = v
		}
	}
	return vars, nil
}

// Overlay returns a getenv that answers from the environment first, then vars.
func Overlay(getenv func(string) string, vars map[string]string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vars[k]
	}
}
