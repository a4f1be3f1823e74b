namespace Linux;

/// <summary>
/// The method builder for hot kernel paths whose every scheduling point usually lets the task go
/// on (a page fault of a direct run, most steps of an exploration). A method that completes
/// without suspending costs little more than a call: starting it does not save and restore the
/// thread's ExecutionContext (the model never uses AsyncLocal or a SynchronizationContext: one OS
/// thread runs one kernel and the scheduler resumes continuations inline), and its result is kept
/// in the builder itself. From the first suspension, or an exception, on, everything goes through
/// <see cref="PoolingAsyncValueTaskMethodBuilder{TResult}"/>, whose state-machine boxes are reused
/// once their result is read (the fault path suspends at every scheduling point an exploration
/// stops at, and a fresh box per suspended call was a tenth of what an execution allocated).
/// BUG and oops (<see cref="KernelBugException"/>) stop the task at the first such frame they
/// reach: the method never completes (<see cref="Scheduler.MakeTaskDead"/>).
/// </summary>
/// <remarks>Use with <c>[AsyncMethodBuilder(typeof(InlineAsyncBuilder&lt;&gt;))]</c> on an async method returning
/// <see cref="ValueTask{TResult}"/>. An await of a pooled box posts its continuation to a captured
/// SynchronizationContext instead of running it inline, so schedulers run tasks without one
/// (<see cref="DirectScheduler.RunUntilIdle"/> clears it; explorer workers never have one).</remarks>
public struct InlineAsyncBuilder<TResult>
{
    private PoolingAsyncValueTaskMethodBuilder<TResult> _builder;
    private TResult _result;
    /// <summary>The method suspended or threw: <see cref="_builder"/> owns the outcome. Set before
    /// the standard builder copies the state machine into its box, so the copy sees it too.</summary>
    private bool _standard;

    public static InlineAsyncBuilder<TResult> Create() => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine) => _builder.SetStateMachine(stateMachine);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetResult(TResult result)
    {
        if (_standard)
        {
            _builder.SetResult(result);
        }
        else
        {
            _result = result;
        }
    }

    public void SetException(Exception exception)
    {
        _standard = true;
        if (!InlineAsyncBuilder.StopsDeadTask(exception))
        {
            _builder.SetException(exception);
        }
    }

    public ValueTask<TResult> Task
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _standard ? _builder.Task : new ValueTask<TResult>(_result);
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        _standard = true;
        _builder.AwaitOnCompleted(ref awaiter, ref stateMachine);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        _standard = true;
        _builder.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
    }
}

/// <summary><see cref="InlineAsyncBuilder{TResult}"/> for async methods returning <see cref="ValueTask"/>.</summary>
public struct InlineAsyncBuilder
{
    private PoolingAsyncValueTaskMethodBuilder _builder;
    /// <summary>As <see cref="InlineAsyncBuilder{TResult}"/>'s.</summary>
    private bool _standard;

    public static InlineAsyncBuilder Create() => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine) => _builder.SetStateMachine(stateMachine);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetResult()
    {
        if (_standard)
        {
            _builder.SetResult();
        }
    }

    public void SetException(Exception exception)
    {
        _standard = true;
        if (!StopsDeadTask(exception))
        {
            _builder.SetException(exception);
        }
    }

    /// <summary>BUG or oops in the current task: the scheduler takes the task as dead, and the
    /// method's value task (and so every caller's) stays pending for good.</summary>
    internal static bool StopsDeadTask(Exception exception) =>
        exception is KernelBugException { Sched: { } sched } && sched.MakeTaskDead();

    public ValueTask Task
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _standard ? _builder.Task : default;
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        _standard = true;
        _builder.AwaitOnCompleted(ref awaiter, ref stateMachine);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        _standard = true;
        _builder.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
    }
}
