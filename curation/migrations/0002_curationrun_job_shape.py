from django.db import migrations, models
from django.db.models import Q


def attempts_of_started_runs(apps, schema_editor):
    """Runs that started before attempts were counted ran once."""
    apps.get_model("curation", "CurationRun").objects.filter(~Q(status="queued")).update(attempts=1)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(model_name="curationrun", old_name="log", new_name="log_tail"),
        migrations.AlterField(
            model_name="curationrun",
            name="log_tail",
            field=models.TextField(blank=True, help_text="The last lines of its log (newest last)."),
        ),
        migrations.AddField(
            model_name="curationrun",
            name="attempts",
            field=models.PositiveIntegerField(default=0, help_text="How many times a worker started it."),
        ),
        migrations.AddField(
            model_name="curationrun",
            name="cancel_requested",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="curationrun",
            name="error",
            field=models.TextField(blank=True, help_text="Why it failed, with the traceback."),
        ),
        migrations.AlterField(
            model_name="curationrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, help_text="Written every JOB_HEARTBEAT_SECONDS while it runs.", null=True),
        ),
        migrations.RunPython(attempts_of_started_runs, migrations.RunPython.noop),
    ]
