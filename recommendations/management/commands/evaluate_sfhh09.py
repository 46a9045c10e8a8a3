"""manage.py evaluate_sfhh09 [--slug S] [--replace] [--data PATH] [--preset P] [--config JSON] [--fixed]

The SFHH09 shortcut of `evaluate_contacts`: the SFHH09 contacts kept in the repository
(data/sfhh09, CC0) through create_event -> import_interactions --create-missing -> train ->
batch_recommendations, scored by the protocol of data/sfhh09/README.md next to the baselines
computed in the same run. The event is created with ``--preset face-to-face`` (its sessions are
60 s contact components) unless ``--config`` is given (then the rooms preset, unless ``--preset``).
"""

from events.enums import EnginePreset
from recommendations.evaluation import sfhh09 as S
from recommendations.management.commands.evaluate_contacts import Command as EvaluateContacts


class Command(EvaluateContacts):
    help = "Evaluate the recommender on SFHH09 (kept in data/sfhh09) through create_event/import/train/batch."
    name = "sfhh09"
    default_data = str(S.DEFAULT_PATH)
    default_preset = EnginePreset.FACE_TO_FACE.value
