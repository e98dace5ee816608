import Synchronization

/// A value shared by concurrent child tasks: a `Mutex` in a class, since a `Mutex` itself cannot be captured
/// by the escaping closures of a task group.
package final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    /// Wraps `value`.
    package init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with the value, exclusively.
    package func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}
