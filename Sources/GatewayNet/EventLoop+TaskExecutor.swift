/// A loop as a task executor (`Task(executorPreference: loop)`): a task that mostly waits
/// (an audited lookup waits for the writer's commit) resumes on the thread that
/// owns its connection, and its response is written there without another hand-off.
/// Every resumption of such a task otherwise costs a wake-up of a pool thread and then
/// of the loop, each a futex and a context switch (RESULTS.md).
///
/// Hazards: whatever the task computes between two awaits runs on the loop, ahead of every
/// other connection's events, so only short handlers belong here. And a job enqueued
/// after the loop stopped is dropped like any work posted then: its task never resumes.
/// The server stops its loops only once requests in flight are answered or its grace
/// period ends, so that is a task left suspended at shutdown, not a request lost in service.
extension EventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        if inLoop {
            runSoon { job.runSynchronously(on: executor) }
        } else {
            execute { job.runSynchronously(on: executor) }
        }
    }
}
