% rebase('admin_base')
<h1>Pipeline runs</h1>
% include('admin_trigger')
% include('admin_runs_table')
