import Foundation
import PostgresNIO

extension PostgresStudyStore {
    /// The versioned schema: each entry runs once, in order. A released entry is never edited: add one.
    private static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE autotune_studies (
                    id bigserial PRIMARY KEY,
                    name text NOT NULL UNIQUE,
                    definition text NOT NULL,
                    task_source text,
                    status text NOT NULL,
                    best_number bigint,
                    best_score double precision,
                    elapsed_seconds double precision NOT NULL DEFAULT 0,
                    runner_host text,
                    runner_pid bigint,
                    checkpoint bytea,
                    checkpoint_version bigint NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE autotune_trials (
                    id bigserial PRIMARY KEY,
                    study_id bigint NOT NULL REFERENCES autotune_studies (id) ON DELETE CASCADE,
                    number bigint NOT NULL,
                    state text NOT NULL,
                    params text NOT NULL,
                    metrics text NOT NULL DEFAULT '{}',
                    score double precision,
                    error_stage text,
                    error_message text,
                    timings text NOT NULL DEFAULT '{}',
                    attempt bigint NOT NULL DEFAULT 0,
                    started_at timestamptz,
                    finished_at timestamptz,
                    heartbeat_at timestamptz,
                    gpus text,
                    port bigint,
                    host text,
                    worker_host text,
                    worker_pid bigint,
                    UNIQUE (study_id, number)
                )
                """,
                "CREATE INDEX autotune_trials_by_state ON autotune_trials (study_id, state, number)",
                """
                CREATE TABLE autotune_leases (
                    host text NOT NULL,
                    kind text NOT NULL,
                    resource_id bigint NOT NULL,
                    pid bigint NOT NULL,
                    study text NOT NULL,
                    trial bigint NOT NULL,
                    acquired_at timestamptz NOT NULL,
                    PRIMARY KEY (host, kind, resource_id)
                )
                """,
            ]
        ),
        (2, ["ALTER TABLE autotune_studies ADD COLUMN best_front text"]),
        (3, ["ALTER TABLE autotune_trials ADD COLUMN confirms bigint"]),
        // When a runner's process started: with its pid it names one process, so a reused pid is not taken for it.
        (
            4,
            [
                "ALTER TABLE autotune_studies ADD COLUMN runner_started text",
                "ALTER TABLE autotune_trials ADD COLUMN worker_started text",
                "ALTER TABLE autotune_leases ADD COLUMN started text",
            ]
        ),
        // Every write of a trial's row takes the study's next change number (under the study's row lock, so numbers
        // commit in order): a worker reads only the trials that changed since its last read.
        (
            5,
            [
                "ALTER TABLE autotune_studies ADD COLUMN change bigint NOT NULL DEFAULT 0",
                "ALTER TABLE autotune_trials ADD COLUMN change bigint NOT NULL DEFAULT 0",
                "CREATE INDEX autotune_trials_by_change ON autotune_trials (study_id, change)",
            ]
        ),
    ]

    /// Creates or upgrades the tables. Workers starting together take an advisory lock, so one migrates and
    /// the others find it done.
    func migrate() async throws {
        try await transaction { connection in
            try await connection.rows("SELECT pg_advisory_xact_lock(7036021937)", logger: self.logger)
            try await connection.rows(
                """
                CREATE TABLE IF NOT EXISTS autotune_schema (
                    version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: self.logger
            )
            let applied = Set(
                try await connection.rows("SELECT version FROM autotune_schema", logger: self.logger)
                    .map { try $0.decode(Int.self) }
            )
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.rows(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                let version = migration.version
                try await connection.rows(
                    "INSERT INTO autotune_schema (version) VALUES (\(version))", logger: self.logger)
            }
        }
    }
}
