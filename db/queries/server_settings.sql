-- name: SettingSet :exec
INSERT INTO server_settings (key, value, updated_at)
VALUES (@key, @value, @now)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
