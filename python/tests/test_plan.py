"""python -m embedkit plan: the embedkit CLI's planner and report, through ek_plan."""
import json
import subprocess
import sys


def run(*arguments):
    return subprocess.run([sys.executable, "-m", "embedkit", "plan", *arguments], capture_output=True, text=True)


def test_json_report_on_a_hypothetical_device():
    result = run("--rows", "10000000", "--dim", "64", "--optimizer", "adam", "--gpu-memory", "80GiB",
                 "--batch", "65536", "--json")
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["device"] == "cuda:0 (hypothetical)"
    assert decision["reason_code"] == "fits_on_device"
    assert decision["bytes"]["weights"] == 10_000_000 * 64 * 4
    assert decision["bytes"]["optimizer_state"] == 2 * 10_000_000 * 64 * 4
    assert decision["device_free_bytes"] == 80 << 30


def test_dtype_counts_the_rows_bytes():
    result = run("--rows", "1000000", "--dim", "64", "--dtype", "bfloat16", "--gpu-memory", "80GiB", "--json")
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["bytes"]["weights"] == 1_000_000 * 64 * 2
    assert decision["reason_code"] == "dtype_has_no_cuda_kernel"  # the CUDA kernels take float32 rows


def test_text_report_is_the_cli_text():
    result = run("--rows", "100000000", "--dim", "128", "--optimizer", "adam", "--gpu-memory", "16GiB")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "table of 100000000 x 128, adam, batches up to 262144 lookups"
    assert lines[1] == "  weights          47.68 GiB (51,200,000,000 bytes)"
    assert lines[2] == "  optimizer state  95.37 GiB (102,400,000,000 bytes)"
    assert "placement: cpu (does_not_fit)" in lines


def test_errors_exit_non_zero_with_the_cli_wording():
    result = run("--rows", "5", "--dim", "4", "--gpu-memory", "lots")
    assert result.returncode == 1
    assert result.stderr.startswith("embedkit: error: 'lots' is not a size")
    assert run("--dim", "4").returncode != 0
    assert run("--rows", "5", "--dim", "4", "--optimizer", "rmsprop").returncode != 0


def test_the_optimizer_choices_come_from_the_library():
    from embedkit import _embedkit

    assert _embedkit.optimizer_names() == ["sgd", "adagrad", "rowwise_adagrad", "adam", "ftrl"]
    assert run("--rows", "5", "--dim", "4", "--optimizer", "rowwise_adagrad").returncode == 0
