namespace Linux;

/// <summary>
/// The method builder for hot kernel paths whose every scheduling point usually lets the task go
/// on (a page fault of a direct run, most steps of an exploration). It behaves as
/// <see cref="AsyncValueTaskMethodBuilder{TResult}"/> except that starting the method does not
/// save and restore the thread's ExecutionContext around its synchronous part: the model never
/// uses AsyncLocal or a SynchronizationContext (one OS thread runs one kernel; continuations are
/// resumed inline by the scheduler), and that bookkeeping was a measurable share of a fault.
/// Suspension at a point that does not complete goes through the standard builder unchanged.
/// </summary>
/// <remarks>Use with <c>[AsyncMethodBuilder(typeof(InlineAsyncBuilder&lt;&gt;))]</c> on an async method returning
/// <see cref="ValueTask{TResult}"/>.</remarks>
public struct InlineAsyncBuilder<TResult>
{
    private AsyncValueTaskMethodBuilder<TResult> _builder;

    public static InlineAsyncBuilder<TResult> Create() => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine) => _builder.SetStateMachine(stateMachine);

    public void SetResult(TResult result) => _builder.SetResult(result);

    public void SetException(Exception exception) => _builder.SetException(exception);

    public ValueTask<TResult> Task => _builder.Task;

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine => _builder.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine => _builder.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}

/// <summary><see cref="InlineAsyncBuilder{TResult}"/> for async methods returning <see cref="ValueTask"/>.</summary>
public struct InlineAsyncBuilder
{
    private AsyncValueTaskMethodBuilder _builder;

    public static InlineAsyncBuilder Create() => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine) => _builder.SetStateMachine(stateMachine);

    public void SetResult() => _builder.SetResult();

    public void SetException(Exception exception) => _builder.SetException(exception);

    public ValueTask Task => _builder.Task;

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine => _builder.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine => _builder.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}
